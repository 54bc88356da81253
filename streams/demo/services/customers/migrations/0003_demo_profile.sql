-- Richer customer profiles for the demo: every column shape the pipeline must carry byte-exact.
-- New columns are nullable, so each is a BACKWARD-compatible schema change (S1) and old rows stay
-- valid. The publication is FOR TABLE public.customers without a column list, so new columns are
-- captured automatically. REPLICA IDENTITY stays DEFAULT on purpose: an update that leaves `bio`
-- alone then sends Debezium's unavailable-value placeholder for it, which the sink must not
-- write (S3).
ALTER TABLE public.customers ADD COLUMN IF NOT EXISTS display_name  text;         -- unicode, NULL for some
ALTER TABLE public.customers ADD COLUMN IF NOT EXISTS birth_date    date;
ALTER TABLE public.customers ADD COLUMN IF NOT EXISTS credit_limit  numeric(12,2);
ALTER TABLE public.customers ADD COLUMN IF NOT EXISTS preferences   jsonb;
-- Large for some rows (>= 8 KiB once compressed would not fit a page): stored out of line (TOAST).
ALTER TABLE public.customers ADD COLUMN IF NOT EXISTS bio           text;
ALTER TABLE public.customers ADD COLUMN IF NOT EXISTS last_login_at timestamptz;
-- Keep bio out of line and uncompressed so "large" really means TOASTed, whatever its entropy.
ALTER TABLE public.customers ALTER COLUMN bio SET STORAGE EXTERNAL;
