DROP TABLE tenant_staff;
