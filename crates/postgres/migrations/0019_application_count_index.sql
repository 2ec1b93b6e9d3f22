-- latchkey schema, version 19: the count of instance applications per
-- block (schema 17) is read from an index of its own instead of the table.
-- A burst of creates writes a delta row each before the next fold (every
-- second): the fold and the vacuum after it free those rows, but the
-- table keeps its pages (the folded rows land anywhere in it, so no
-- vacuum can cut its tail), and every page's total read them all: after
-- 150,000 creates imported at once, 957 pages for 147 rows, 0.5 ms a page.
-- The index is on the row's id, with the block and the delta: a folded row
-- is a new row, its id the highest, so the live entries sit together at
-- the index's right end and the emptied pages to their left are recycled
-- (keyed by block, each block's folded entry stayed alone in a page of
-- its own: 150 pages read for 147 rows). The vacuum after each fold keeps
-- the table's pages all-visible, so the sums are an index-only scan.
CREATE INDEX instance_application_counts_rows
    ON instance_application_counts (id) INCLUDE (block_start, delta);
