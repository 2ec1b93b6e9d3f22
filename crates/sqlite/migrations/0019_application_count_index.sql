-- latchkey schema, version 19: the count of instance applications per
-- block (schema 17) is indexed by block, with the delta, as on PostgreSQL:
-- the sums per block a deep page reads (when they are not remembered) come
-- from the index in block order, with no sort.
CREATE INDEX instance_application_counts_block
    ON instance_application_counts (block_start, delta);
