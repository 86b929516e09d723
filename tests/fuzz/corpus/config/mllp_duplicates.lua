mllp = { duplicates = "by_content" }
