"""Train a small NumPy language model whose output layer goes through fs.linear_cross_entropy.

The model predicts the next token from the two before it: embeddings E (V, 32) of both, a tanh
hidden layer of 64 units, and the output layer (W (V, 64), b (V,)) over a vocabulary of V tokens.
The corpus is synthetic: a Markov chain over Zipf-distributed tokens. The output layer's loss
and its gradients come from one chunked call (no (batch, V) logits); the rest is plain NumPy
back-propagation and SGD.

    python examples/linear_lm.py                  # V = 20,000, 60 steps of 2,048 tokens
    python examples/linear_lm.py --vocab 2000 --steps 5 --batch 256   # seconds
"""
import argparse
import time

import numpy as np

import fastsoftmax as fs


def corpus(rng, vocab, length):
    """Tokens of a Markov chain: each token's successor is one of 8 tokens of its own, Zipf-chosen."""
    nexts = rng.zipf(1.3, (vocab, 8)) % vocab
    pick = rng.integers(0, 8, length)
    tokens = np.empty(length, np.int64)
    tokens[0] = 0
    for i in range(1, length):
        tokens[i] = nexts[tokens[i - 1], pick[i]]
    return tokens


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vocab", type=int, default=20_000)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--batch", type=int, default=2048)
    ap.add_argument("--lr", type=float, default=0.5)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    V, De, H = args.vocab, 32, 64
    tokens = corpus(rng, V, 200_000)
    E = (rng.standard_normal((V, De)) * 0.1).astype(np.float32)
    U = (rng.standard_normal((2 * De, H)) / np.sqrt(2 * De)).astype(np.float32)
    W = np.zeros((V, H), np.float32)  # the output layer, PyTorch's layout: one row per token
    b = np.zeros(V, np.float32)
    loss_fn = fs.LinearCrossEntropyLoss()
    t0 = time.perf_counter()
    for step in range(1, args.steps + 1):
        at = rng.integers(2, tokens.size, args.batch)
        ctx = np.concatenate([E[tokens[at - 2]], E[tokens[at - 1]]], axis=1)  # (batch, 2 De)
        hidden = np.tanh(ctx @ U)                                                # (batch, H)
        loss = loss_fn(hidden, W, tokens[at], b)   # the output layer and the loss, chunk by chunk
        g = loss_fn.backward()                     # LinearGrads(inputs, classifier, bias)
        W -= args.lr * g.classifier
        b -= args.lr * g.bias
        d_pre = g.inputs * (1 - hidden**2)         # back through tanh
        d_ctx = d_pre @ U.T
        U -= args.lr * (ctx.T @ d_pre)
        np.add.at(E, tokens[at - 2], -args.lr * d_ctx[:, :De])
        np.add.at(E, tokens[at - 1], -args.lr * d_ctx[:, De:])
        if step == 1 or step % 10 == 0 or step == args.steps:
            print(f"step {step:4d}   loss {float(loss):.4f}   (uniform guess: {np.log(V):.4f})")
    print(f"{args.steps} steps in {time.perf_counter() - t0:.1f} s")
    return float(loss)


if __name__ == "__main__":
    main()
