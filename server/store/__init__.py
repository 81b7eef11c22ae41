"""The store layer: the only code that holds SQL, ``sqlite3`` or data-directory paths.

The database and its migrations, the object store (ciphertext files named by
random ids), the uploads in progress, file times and the disk reserve. Nothing
here knows HTTP. Layers: docs/SERVER_LAYERS.md.
"""
