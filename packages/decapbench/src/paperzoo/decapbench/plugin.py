"""Hook implementations for paperzoo-decapbench (imports paperzoo.core only)."""
