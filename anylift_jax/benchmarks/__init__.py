"""One module per benchmark; each has `main(argv)`."""
