"""CSV files in: the format, the import service, the media folder, import runs."""
