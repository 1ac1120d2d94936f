-- rill projection: balances
-- category: account
-- partition: stream
--
-- One row per account stream ("account-42"): owner, balance, status.
-- Built into rill; `rill project replay balances` rebuilds it.
-- schema
CREATE TABLE IF NOT EXISTS balances(
  account TEXT PRIMARY KEY,          -- the account's stream name
  owner   TEXT,
  balance INTEGER NOT NULL DEFAULT 0,
  status  TEXT NOT NULL DEFAULT 'open'   -- 'open' or 'closed'
) WITHOUT ROWID;
-- on AccountOpened
-- Projections see events upcast to the current schema (v3: {"holder": {"name"}});
-- the older shapes are accepted too for stores read without upcasting.
INSERT INTO balances(account, owner, balance, status)
  VALUES (:stream, COALESCE(:data.holder.name, :data.owner.name, :data.owner), 0, 'open')
  ON CONFLICT(account) DO UPDATE SET owner = excluded.owner, status = 'open';
-- on Deposited
UPDATE balances SET balance = balance + :data.amount WHERE account = :stream;
-- on Withdrawn
UPDATE balances SET balance = balance - :data.amount WHERE account = :stream;
-- on AccountClosed
UPDATE balances SET status = 'closed' WHERE account = :stream;
