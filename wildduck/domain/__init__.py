"""The rules of the mail store, independent of protocols and storage engines."""
