-- Reservation projections: restaurants, their tables, reservations and client chats.
create table if not exists restaurants (
  id text primary key,
  name text not null,
  created_at timestamptz not null default now()
);

create table if not exists restaurant_tables (
  restaurant_id text not null references restaurants (id),
  id text not null,
  capacity integer not null,
  status text not null default 'AVAILABLE',
  updated_at timestamptz not null default now(),
  primary key (restaurant_id, id)
);

create table if not exists reservations (
  restaurant_id text not null references restaurants (id),
  id text not null,
  client_id text,
  client_name text not null,
  table_id text,
  party_size integer not null,
  reserved_for timestamptz not null,
  status text not null default 'PENDING',
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  primary key (restaurant_id, id)
);

create index if not exists reservations_restaurant_date_idx on reservations (restaurant_id, reserved_for);

-- Chat history outlives the event log's retention; seq ties each row to its logged event.
create table if not exists restaurant_chat_messages (
  restaurant_id text not null references restaurants (id),
  client_id text not null,
  seq bigint not null,
  message_id text not null,
  from_user_id text not null,
  from_role text not null,
  body text not null,
  sent_at timestamptz not null,
  published_at timestamptz not null,
  primary key (restaurant_id, client_id, seq)
);
