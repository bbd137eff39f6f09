"""The search: the controller graph, its state, the actions, MCTS math and verification."""
