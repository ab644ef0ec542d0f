-- Turn another application's writes into Switchboard events, with no change to that application.
--
-- Run this on the database Switchboard uses (DATABASE_URL) and start Switchboard with
--   NOTIFY_CHANNELS=spaces_changed=setSpaceState
-- Every payload sent on `spaces_changed` is the JSON `input` of the `setSpaceState` mutation
-- (SetSpaceStateInput: lotId, spaceNumber, state, vehiclePlate, customerName). The lot and its
-- spaces must exist in Switchboard (`upsertLot`), as for a publish over HTTP.

-- The other application's table: yours already exists; this one is here for completeness.
create table if not exists spaces (
  lot_id text not null,
  number text not null,
  state text not null default 'free', -- free | occupied | reserved | out_of_service
  plate text,
  primary key (lot_id, number)
);

create or replace function notify_space_changed() returns trigger
language plpgsql as $$
begin
  -- NOTIFY is transactional: sent when the writing transaction commits, never on rollback.
  perform pg_notify(
    'spaces_changed',
    json_build_object(
      'lotId', new.lot_id,
      'spaceNumber', new.number,
      'state', upper(new.state),
      'vehiclePlate', new.plate
    )::text
  );
  return new;
end
$$;

drop trigger if exists spaces_changed on spaces;
create trigger spaces_changed
  after update of state, plate on spaces
  for each row
  when (old.state is distinct from new.state or old.plate is distinct from new.plate)
  execute function notify_space_changed();
