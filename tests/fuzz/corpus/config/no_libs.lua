x = string.rep("a", 10)
os.execute("true")
