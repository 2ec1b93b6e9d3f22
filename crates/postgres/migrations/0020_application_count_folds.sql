-- latchkey schema, version 20: the fold of the count of instance
-- applications (schema 16, per block since 17) marks the rows it writes
-- (`folded`) and gives the folds a new generation, in the fold's
-- transaction: a random number, not a counter, which a database rewound by
-- a restore or a failover to a standby that lost commits could bring back
-- with other rows. The folded rows change only with the generation (the
-- truncation of the applications too, below), so an instance remembers their sums
-- per block with the generation they were read at, and a listing page reads
-- the generation and whether any delta is still unfolded in its own
-- statement: the same generation and nothing unfolded, and the remembered
-- sums are that snapshot's count, read by no one else and told by no
-- notification. A delta a trigger writes is unfolded until the next fold
-- (a second at most); the index of those is empty between bursts.
ALTER TABLE instance_application_counts ADD COLUMN folded BOOLEAN NOT NULL DEFAULT false;
CREATE INDEX instance_application_counts_unfolded
    ON instance_application_counts (id) WHERE NOT folded;
CREATE TABLE instance_application_count_folds (
    id SMALLINT PRIMARY KEY CHECK (id = 1),
    generation BIGINT NOT NULL
);
INSERT INTO instance_application_count_folds (id, generation) VALUES (1, 0);

CREATE OR REPLACE FUNCTION latchkey_count_no_applications() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM instance_application_counts;
    UPDATE instance_application_count_folds
        SET generation = CAST(floor(random() * 9007199254740991) AS BIGINT) WHERE id = 1;
    RETURN NULL;
END
$$;
