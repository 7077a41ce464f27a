// Gives the Catch2 main library a source file of its own under Catch2 3.x too.
