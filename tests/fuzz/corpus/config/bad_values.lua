label = { indication = "xx", region = "mars" }
email = { url = "smtp://x", dir = "y" }
