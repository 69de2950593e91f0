-- Finalized invoices and credit notes: immutable legal documents, numbered without gaps.

-- The tenant's own legal details (name, address, VAT id), snapshotted into every invoice.
ALTER TABLE tenants ADD COLUMN seller TEXT;

-- One row per (tenant, series, year): the last number handed out. Incremented inside the
-- transaction that writes the document, so a rollback never consumes a number.
CREATE TABLE document_counters (
    tenant_id  TEXT NOT NULL REFERENCES tenants (id),
    series     TEXT NOT NULL,          -- INV | CN
    year       INTEGER NOT NULL,
    last       INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, series, year)
);

CREATE TABLE invoices (
    id                    TEXT PRIMARY KEY,
    tenant_id             TEXT NOT NULL REFERENCES tenants (id),
    number                TEXT NOT NULL,
    customer_number       TEXT NOT NULL,
    external_contract_id  TEXT,
    currency              TEXT NOT NULL,
    invoice_date          TEXT NOT NULL,
    total_gross           TEXT NOT NULL,
    total_net             TEXT NOT NULL,
    gross_minor           BIGINT NOT NULL,  -- total gross in minor units: exact sums in SQL
    document              BYTEA NOT NULL,     -- the invoice as notified (JSON parameters)
    event_id              TEXT NOT NULL REFERENCES events (id),
    created_at            BIGINT NOT NULL,
    UNIQUE (tenant_id, number)
);
CREATE INDEX invoices_customer ON invoices (tenant_id, customer_number, id);
CREATE INDEX invoices_list ON invoices (tenant_id, id);
CREATE INDEX invoices_event ON invoices (event_id);

CREATE TABLE credit_notes (
    id                    TEXT PRIMARY KEY,
    tenant_id             TEXT NOT NULL REFERENCES tenants (id),
    number                TEXT NOT NULL,
    invoice_number        TEXT NOT NULL,
    total_gross           TEXT NOT NULL,
    total_net             TEXT NOT NULL,
    gross_minor           BIGINT NOT NULL,
    document              BYTEA NOT NULL,
    event_id              TEXT NOT NULL REFERENCES events (id),
    created_at            BIGINT NOT NULL,
    UNIQUE (tenant_id, number),
    FOREIGN KEY (tenant_id, invoice_number) REFERENCES invoices (tenant_id, number)
);
CREATE INDEX credit_notes_invoice ON credit_notes (tenant_id, invoice_number, id);
CREATE INDEX credit_notes_event ON credit_notes (event_id);

-- Immutable: the database itself refuses to change or remove a finalized document.
CREATE FUNCTION billhook_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '%', TG_ARGV[0] USING ERRCODE = 'integrity_constraint_violation';
END
$$;
CREATE TRIGGER invoices_immutable BEFORE UPDATE ON invoices
    FOR EACH ROW EXECUTE FUNCTION billhook_refuse('a finalized invoice is immutable');
CREATE TRIGGER invoices_kept BEFORE DELETE ON invoices
    FOR EACH ROW EXECUTE FUNCTION billhook_refuse('a finalized invoice is never deleted');
CREATE TRIGGER credit_notes_immutable BEFORE UPDATE ON credit_notes
    FOR EACH ROW EXECUTE FUNCTION billhook_refuse('a credit note is immutable');
CREATE TRIGGER credit_notes_kept BEFORE DELETE ON credit_notes
    FOR EACH ROW EXECUTE FUNCTION billhook_refuse('a credit note is never deleted');

-- Open billing information by age, for the automatic finalization.
CREATE INDEX billing_open_age ON billing_information (status, created_at) WHERE status = 'open';
