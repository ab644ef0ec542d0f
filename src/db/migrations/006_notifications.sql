-- Notification inbox: what was sent to a user, a role or everyone, and what each user read.
create table if not exists notifications (
  id text primary key,
  audience text not null,
  target text,
  title text not null,
  body text not null,
  level text not null,
  data jsonb,
  created_at timestamptz not null
);

create index if not exists notifications_audience_idx on notifications (audience, target, created_at desc);

create table if not exists notification_reads (
  user_id text not null,
  notification_id text not null references notifications (id) on delete cascade,
  read_at timestamptz not null default now(),
  primary key (user_id, notification_id)
);
