-- A letter whose sending was begun by a claim that died (a crashed daemon, a lost answer) is
-- never sent again blindly: ePUAP cannot be asked whether it arrived. It is held for an
-- official (issue 15, point 3; DESIGN.md §1), who resends it or records it as sent.
ALTER TABLE outbound_document ADD COLUMN review_required_at TEXT;
ALTER TABLE outbound_document ADD COLUMN review_reason TEXT;
