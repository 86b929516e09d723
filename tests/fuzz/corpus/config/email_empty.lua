email = {}
