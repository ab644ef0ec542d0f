-- Parking projections: lots, their spaces, tickets and payments.
create table if not exists lots (
  id text primary key,
  name text not null,
  alert_threshold double precision not null default 0.95,
  occupancy_alert_active boolean not null default false,
  created_at timestamptz not null default now()
);

create table if not exists parking_spaces (
  lot_id text not null references lots (id),
  number text not null,
  state text not null default 'FREE',
  vehicle_plate text,
  customer_name text,
  updated_at timestamptz not null default now(),
  primary key (lot_id, number)
);

create table if not exists parking_tickets (
  id text primary key,
  lot_id text not null references lots (id),
  vehicle_plate text not null,
  space_number text,
  customer_name text,
  entry_at timestamptz not null,
  paid_at timestamptz
);

create table if not exists parking_payments (
  ticket_id text not null references parking_tickets (id),
  lot_id text not null references lots (id),
  amount numeric(12, 2) not null,
  method text not null,
  paid_at timestamptz not null
);

create index if not exists parking_payments_lot_paid_idx on parking_payments (lot_id, paid_at);
