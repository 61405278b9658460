"""gradwise.models"""
