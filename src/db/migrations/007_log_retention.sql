-- Retention prunes a prefix of each channel's log; seqs up to pruned_through may be gone, so
-- a reader positioned before it cannot resume (CURSOR_EXPIRED). last_seq is never reset.
alter table channels add column if not exists pruned_through bigint not null default 0;
