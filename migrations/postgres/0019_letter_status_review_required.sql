-- A letter whose sending was interrupted is in a state of its own, review_required
-- (src/delivery/status.rs, the one table of a letter's moves), instead of 'sending' with
-- review_required_at set. review_required_at and review_reason still say when and why.
-- 'failed' was never written and is gone.
ALTER TABLE outbound_document DROP CONSTRAINT outbound_document_status_check;
UPDATE outbound_document SET status = 'review_required'
    WHERE status = 'sending' AND review_required_at IS NOT NULL;
ALTER TABLE outbound_document ADD CONSTRAINT outbound_document_status_check
    CHECK (status IN ('pending', 'sending', 'review_required', 'sent', 'delivered'));
