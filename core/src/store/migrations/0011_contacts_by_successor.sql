-- Schema 11: contacts found by the account that claims to replace them. Every
-- received message asks whether its sender is such a successor; without an
-- index that read every contact's row, on every message. Almost no contact
-- has a successor, so the index holds only those that do.
CREATE INDEX contacts_by_successor ON contacts (successor_account_id)
    WHERE successor_account_id IS NOT NULL;
