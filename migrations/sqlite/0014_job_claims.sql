-- Claims that name their owner (a fencing token). Each claim of a job writes a fresh random
-- token; only the holder of the token renews the lease, finishes the job or puts it back,
-- and a letter records the claim under which it began to be sent, so that a second daemon
-- never sends a letter another one is still sending (issue 15, point 3).
ALTER TABLE job ADD COLUMN claim_token INTEGER;
CREATE INDEX job_claim ON job (claim_token) WHERE status = 'running';
ALTER TABLE outbound_document ADD COLUMN sending_claim INTEGER;
