"""gradwise.report"""
