"""Hook implementations for paperzoo-vqva (imports paperzoo.core only)."""
