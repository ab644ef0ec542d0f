-- The durable event log: one gap-free sequence per channel.
create table if not exists channels (
  name text primary key,
  last_seq bigint not null default 0
);

create table if not exists events (
  channel text not null,
  seq bigint not null,
  type text not null,
  data jsonb not null,
  published_at timestamptz not null default now(),
  primary key (channel, seq)
);

create index if not exists events_published_at_idx on events (published_at);
