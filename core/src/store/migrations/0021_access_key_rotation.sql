-- Schema 21: our access key changes when someone who held it leaves.
--
-- Every member of a committee learns every other member's access key (with
-- the committee's log, and inside each message). One removed would keep
-- sending us sealed mail, unseen by the relay's per-sender limits, for as long
-- as we kept the key. So the accounts our current key was given to as
-- co-members are kept here; when one of them is no longer a co-member in any
-- committee we hold, the key is replaced and the new one told to those who
-- remain (`access_key`).
--
-- withheld = 0: a co-member, who holds the current key.
-- withheld = 1: a former co-member, not to be told a new key (unless it
-- becomes a co-member again).
CREATE TABLE access_key_peers (
    account BLOB PRIMARY KEY,
    withheld INTEGER NOT NULL
) WITHOUT ROWID;

-- Accounts still to be told our new access key: recorded in the transaction
-- that replaced it, each dropped when the message telling it is in the outbox.
CREATE TABLE access_key_owed (
    account BLOB PRIMARY KEY
) WITHOUT ROWID;
