-- Token revocations: every token of `sub` issued at or before `revoked_before` (to the second)
-- is refused, and the subject's open connections are closed on every instance.
create table if not exists token_revocations (
  sub text primary key,
  revoked_before timestamptz not null,
  reason text not null
);
