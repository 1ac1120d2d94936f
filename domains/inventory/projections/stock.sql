-- rill projection: stock
-- category: sku
-- partition: stream
--
-- One row per SKU stream ("sku-7"): units remaining and units sold.
-- schema
CREATE TABLE IF NOT EXISTS stock(
  sku       TEXT PRIMARY KEY,        -- the SKU's stream name
  remaining INTEGER NOT NULL,
  sold      INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
-- on SkuCreated
INSERT INTO stock(sku, remaining, sold) VALUES (:stream, :data.stock, 0)
  ON CONFLICT(sku) DO UPDATE SET remaining = excluded.remaining;
-- on Purchased
UPDATE stock SET remaining = remaining - :data.quantity, sold = sold + :data.quantity WHERE sku = :stream;
-- on Restocked
UPDATE stock SET remaining = remaining + :data.quantity WHERE sku = :stream;
