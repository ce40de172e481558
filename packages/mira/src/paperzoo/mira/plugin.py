"""Hook implementations for paperzoo-mira (imports paperzoo.core only)."""
