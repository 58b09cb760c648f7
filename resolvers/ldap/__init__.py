"""LDAP (FreeIPA) as an upstream system: which users exist, asked over STARTTLS."""
