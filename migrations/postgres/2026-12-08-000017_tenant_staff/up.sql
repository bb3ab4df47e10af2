-- Tenant staff (DESIGN §7.3 "Across the tenant"): users who hold a staff role's power level in
-- every managed room of the tenant, rooms declared later included, without being members. A new
-- table: the previous release reads nothing here.
CREATE TABLE tenant_staff (
    tenant_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    role TEXT NOT NULL,
    actor TEXT,
    removed_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, user_id)
);
COMMENT ON TABLE tenant_staff IS 'Tenant staff the platform declared; ensure_room gives each the level of their role (roles.staff) in every managed room of the tenant.';
COMMENT ON COLUMN tenant_staff.tenant_id IS 'The tenant, case kept.';
COMMENT ON COLUMN tenant_staff.user_id IS 'The Matrix user who is staff.';
COMMENT ON COLUMN tenant_staff.role IS 'The staff role (moderator | admin, or one configured under roles.staff); the last one given when removed.';
COMMENT ON COLUMN tenant_staff.actor IS 'The platform user who made the last change (X-OpenMeet-Actor), when given.';
COMMENT ON COLUMN tenant_staff.removed_at IS 'Unix ms the platform removed them; the row stays until every room dropped the entry, then goes. NULL: staff.';
COMMENT ON COLUMN tenant_staff.created_at IS 'Unix ms.';
COMMENT ON COLUMN tenant_staff.updated_at IS 'Unix ms.';
