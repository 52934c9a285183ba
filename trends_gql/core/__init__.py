"""The foundation every other part uses: settings, database, tables, errors, rules."""
