-- An attachment's uploader may delete it (with its account): the upload
-- carries SHA-256 of a key only the uploading device keeps, never the account.
ALTER TABLE attachments ADD COLUMN delete_hash BLOB;
