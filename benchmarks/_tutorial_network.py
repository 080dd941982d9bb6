"""The classic tutorial's network in pure NumPy: the baseline of test_compat_bench.py.

A re-implementation of the algorithm of ``network.py`` from chapter 1 of Michael
Nielsen's *Neural Networks and Deep Learning* (sigmoid neurons, quadratic cost,
N(0, 1) initialisation, mini-batch SGD with ``random.shuffle``, backpropagation one
sample at a time on column vectors), written for this benchmark. It computes what
``fastbp.compat.network.Network`` computes, the way the tutorial computes it.
"""

import random

import numpy as np


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def sigmoid_prime(z):
    return sigmoid(z) * (1 - sigmoid(z))


class TutorialNetwork:
    def __init__(self, sizes):
        self.num_layers = len(sizes)
        self.sizes = sizes
        self.biases = [np.random.randn(n, 1) for n in sizes[1:]]
        self.weights = [np.random.randn(n_out, n_in)
                        for n_in, n_out in zip(sizes[:-1], sizes[1:])]

    def feedforward(self, a):
        for b, w in zip(self.biases, self.weights):
            a = sigmoid(np.dot(w, a) + b)
        return a

    def SGD(self, training_data, epochs, mini_batch_size, eta, test_data=None):
        training_data = list(training_data)
        n = len(training_data)
        if test_data:
            test_data = list(test_data)
        for j in range(epochs):
            random.shuffle(training_data)
            for k in range(0, n, mini_batch_size):
                self.update_mini_batch(training_data[k:k + mini_batch_size], eta)
            if test_data:
                print(f"Epoch {j}: {self.evaluate(test_data)} / {len(test_data)}")
            else:
                print(f"Epoch {j} complete")

    def update_mini_batch(self, mini_batch, eta):
        sum_b = [np.zeros(b.shape) for b in self.biases]
        sum_w = [np.zeros(w.shape) for w in self.weights]
        for x, y in mini_batch:
            grad_b, grad_w = self.backprop(x, y)
            sum_b = [s + g for s, g in zip(sum_b, grad_b)]
            sum_w = [s + g for s, g in zip(sum_w, grad_w)]
        step = eta / len(mini_batch)
        self.weights = [w - step * s for w, s in zip(self.weights, sum_w)]
        self.biases = [b - step * s for b, s in zip(self.biases, sum_b)]

    def backprop(self, x, y):
        grad_b = [None] * len(self.biases)
        grad_w = [None] * len(self.weights)
        activation, activations, zs = x, [x], []
        for b, w in zip(self.biases, self.weights):
            z = np.dot(w, activation) + b
            zs.append(z)
            activation = sigmoid(z)
            activations.append(activation)
        delta = self.cost_derivative(activations[-1], y) * sigmoid_prime(zs[-1])
        grad_b[-1] = delta
        grad_w[-1] = np.dot(delta, activations[-2].transpose())
        for l in range(2, self.num_layers):
            delta = np.dot(self.weights[-l + 1].transpose(), delta) * sigmoid_prime(zs[-l])
            grad_b[-l] = delta
            grad_w[-l] = np.dot(delta, activations[-l - 1].transpose())
        return grad_b, grad_w

    def evaluate(self, test_data):
        return sum(int(np.argmax(self.feedforward(x)) == y) for x, y in test_data)

    def cost_derivative(self, output_activations, y):
        return output_activations - y
