-- Appointment projections: businesses and their appointments, for queries and stats.
create table if not exists businesses (
  id text primary key,
  name text not null,
  created_at timestamptz not null default now()
);

create table if not exists appointments (
  business_id text not null references businesses (id),
  id text not null,
  status text not null default 'SCHEDULED',
  client_id text,
  client_name text not null,
  service text,
  starts_at timestamptz not null,
  notes text,
  updated_at timestamptz not null default now(),
  primary key (business_id, id)
);

create index if not exists appointments_business_starts_idx on appointments (business_id, starts_at);
