-- Publishes made with an idempotencyKey: claimed in the publish transaction, so a retry (from
-- any instance) within the window gets the stored result instead of publishing again.
create table if not exists idempotency_keys (
  subject text not null,
  key text not null,
  fingerprint text not null,
  result jsonb,
  created_at timestamptz not null default now(),
  primary key (subject, key)
);

create index if not exists idempotency_keys_created_at_idx on idempotency_keys (created_at);
