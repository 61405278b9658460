"""gradwise.diagnostics"""
