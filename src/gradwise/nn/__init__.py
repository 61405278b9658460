"""gradwise.nn"""
