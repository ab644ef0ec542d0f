-- Marketplace orders: who sells, buys and delivers each, for access rules and queries.
create table if not exists orders (
  id text primary key,
  seller_id text not null,
  buyer_id text not null,
  courier_id text,
  status text not null,
  tracking_number text,
  total numeric(12, 2),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

create index if not exists orders_seller_idx on orders (seller_id, updated_at desc);

create index if not exists orders_buyer_idx on orders (buyer_id, updated_at desc);
