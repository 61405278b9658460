"""gradwise.data"""
