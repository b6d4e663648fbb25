"""科技创新券: innovation vouchers issued by hub cities to firms and redeemed against signed service contracts."""
