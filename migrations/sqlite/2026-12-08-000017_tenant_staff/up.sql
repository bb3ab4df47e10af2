-- Tenant staff: the level of their role in every managed room of the tenant, without being members.
-- Column meanings are documented in ../../postgres/2026-12-08-000017_tenant_staff/up.sql.
CREATE TABLE tenant_staff (
    tenant_id TEXT NOT NULL,
    user_id TEXT NOT NULL,             -- the Matrix user who is staff
    role TEXT NOT NULL,                -- moderator | admin (roles.staff); the last one when removed
    actor TEXT,                        -- X-OpenMeet-Actor of the last change
    removed_at BIGINT,                 -- unix ms; the row goes once the rooms dropped the entry
    created_at BIGINT NOT NULL,        -- unix ms
    updated_at BIGINT NOT NULL,        -- unix ms
    PRIMARY KEY (tenant_id, user_id)
);
