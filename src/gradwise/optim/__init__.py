"""gradwise.optim"""
