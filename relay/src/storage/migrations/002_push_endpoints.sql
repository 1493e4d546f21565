-- Push endpoints: the URL each device asked to be woken at (UnifiedPush / Web
-- Push style). Only the URL: the relay never stores what a wake-up was for.
CREATE TABLE push_endpoints (
    account_id BLOB    NOT NULL,   -- 20 bytes
    device_id  INTEGER NOT NULL,   -- 1..=127
    url        TEXT    NOT NULL,   -- checked on registration (relay/src/push/endpoint.rs)
    set_at_ms  INTEGER NOT NULL,
    PRIMARY KEY (account_id, device_id)
) WITHOUT ROWID;
