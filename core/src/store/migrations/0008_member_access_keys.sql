-- Schema 8: access keys of committee members this device has no contact for
-- yet, as an organizer sent them with the committee's log. Taken into the
-- contact when a session with the member is opened.
CREATE TABLE member_access_keys (
    account BLOB PRIMARY KEY,
    access_key BLOB NOT NULL
);
