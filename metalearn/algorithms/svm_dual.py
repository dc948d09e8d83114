"""The multi-class (Crammer-Singer) SVM of MetaOptNet's head as a batched, differentiable QP in torch.

The dual, with one row tau_i in R^n per support example i with label y_i and the kernel K = X X^T:

    minimise   1/2 sum_ij K_ij <tau_i, tau_j> + ridge/2 ||tau||^2 - sum_i tau_{i, y_i}
    subject to tau_i <= C e_{y_i} (element-wise),  sum_k tau_ik = 0,

after which the class weights are w_k = sum_i tau_ik x_i and a query scores K(x, X) tau (Crammer & Singer 2001;
Lee et al. 2019, eq. 7). `ridge` > 0 makes the problem strictly convex: the solution is unique and its derivative
exists. Substituting u_i = C e_{y_i} - tau_i turns each row's constraints into the simplex {u_i >= 0, sum u_i = C}, so
the problem is solved by accelerated projected gradient (FISTA) with an exact projection onto the simplex.

The backward pass differentiates the solution implicitly, through its fixed-point condition
tau = P(tau - eta grad f(tau)) with P the projection onto the feasible set: with J the Jacobian of P at the solution
(per row: the identity minus the mean on the row's active set, zero elsewhere), d tau = J((1 - eta ridge) d tau
- eta K d tau - eta dK tau), one linear solve of size S n per episode. No iterate is kept for backward.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor


def project_simplex(v: Tensor, radius: float) -> Tensor:
    """Euclidean projection of each row of v [..., n] onto {u >= 0, sum(u) = radius} (Duchi et al. 2008)."""
    mu = v.sort(dim=-1, descending=True).values
    cumulative = mu.cumsum(-1) - radius
    ranks = torch.arange(1, v.shape[-1] + 1, device=v.device, dtype=v.dtype)
    rho = ((mu - cumulative / ranks) > 0).sum(-1, keepdim=True)  # the number of positive entries, >= 1
    theta = cumulative.gather(-1, rho - 1) / rho.to(v.dtype)
    return (v - theta).clamp_min(0)


def _project(z: Tensor, one_hot: Tensor, c: float) -> Tensor:
    """Projection onto the feasible set {tau_i <= C e_{y_i}, sum_k tau_ik = 0}: tau = C e_y - simplex(C e_y - z)."""
    return c * one_hot - project_simplex(c * one_hot - z, c)


def _gradient(kernel: Tensor, tau: Tensor, one_hot: Tensor, ridge: float) -> Tensor:
    return kernel @ tau + ridge * tau - one_hot


def _step_size(kernel: Tensor, ridge: float) -> Tensor:
    """1 / L with L = the largest eigenvalue of K plus the ridge: the gradient's Lipschitz constant. [B, 1, 1]"""
    top = torch.linalg.eigvalsh(kernel)[..., -1].clamp_min(0)
    return (1.0 / (top + ridge))[..., None, None]


def solve_dual(
    kernel: Tensor, one_hot: Tensor, c: float, ridge: float, max_iter: int = 1000, tol: float = 1e-6
) -> Tensor:
    """FISTA on the dual; kernel [B, S, S], one-hot labels [B, S, n] -> tau [B, S, n] (no gradient).

    Stops when every episode's step moved tau by less than tol relative to its size (checked every 10 steps), or
    after max_iter steps."""
    with torch.no_grad():
        eta = _step_size(kernel, ridge)
        tau = torch.zeros_like(one_hot)
        previous, y, t = tau, tau, 1.0
        for i in range(max_iter):
            tau = _project(y - eta * _gradient(kernel, y, one_hot, ridge), one_hot, c)
            t_next = (1 + (1 + 4 * t * t) ** 0.5) / 2
            y = tau + (t - 1) / t_next * (tau - previous)
            if i % 10 == 9:
                change = (tau - previous).flatten(1).norm(dim=1) / tau.flatten(1).norm(dim=1).clamp_min(1e-12)
                if bool((change < tol).all()):
                    break
            previous, t = tau, t_next
        return tau


def _projection_jacobian(z: Tensor, one_hot: Tensor, c: float) -> Tensor:
    """J of P at z, per row [B, S, n, n]: on the row's active set A (entries of the simplex point above 0),
    I_A - 1_A 1_A^T / |A|; zero elsewhere."""
    active = (project_simplex(c * one_hot - z, c) > 0).to(z.dtype)  # [B, S, n]
    eye = torch.diag_embed(active)
    return eye - active[..., :, None] * active[..., None, :] / active.sum(-1)[..., None, None]


class _DualSolution(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, kernel: Tensor, one_hot: Tensor, c: float, ridge: float, max_iter: int, tol: float) -> Tensor:
        tau = solve_dual(kernel, one_hot, c, ridge, max_iter, tol)
        eta = _step_size(kernel.detach(), ridge)
        z = tau - eta * _gradient(kernel.detach(), tau, one_hot, ridge)
        ctx.save_for_backward(kernel.detach(), tau, eta, _projection_jacobian(z, one_hot, c))
        ctx.ridge = ridge
        return tau

    @staticmethod
    def backward(ctx: Any, grad_tau: Tensor) -> tuple[Tensor | None, ...]:
        kernel, tau, eta, jac = ctx.saved_tensors
        b, s, n = tau.shape
        eye_s = torch.eye(s, dtype=tau.dtype, device=tau.device)
        # A = (1 - eta ridge) I - eta K (x) I_n acting on tau; M = I - J A; solve M^T v = grad with M^T = I - A J
        # (A and J symmetric). Indexed (i, k), (j, l): (A J) = (1 - eta ridge) d_ij J_i[k, l] - eta K_ij J_j[k, l]
        e = eta[..., 0, 0]  # [B]
        block = torch.einsum("ij,bikl->bikjl", eye_s, jac) * (1 - e * ctx.ridge)[:, None, None, None, None]
        block = block - e[:, None, None, None, None] * torch.einsum("bij,bjkl->bikjl", kernel, jac)
        system = torch.eye(s * n, dtype=tau.dtype, device=tau.device) - block.reshape(b, s * n, s * n)
        v = torch.linalg.solve(system, grad_tau.reshape(b, s * n, 1)).view(b, s, n)
        w = (jac @ v[..., None]).squeeze(-1)  # J v, [B, S, n]
        grad_kernel = -eta * (w @ tau.transpose(1, 2))  # dL/dK_ij = -eta <w_i, tau_j>
        return grad_kernel, None, None, None, None, None


def svm_dual(
    kernel: Tensor, one_hot: Tensor, c: float, ridge: float, max_iter: int = 1000, tol: float = 1e-6
) -> Tensor:
    """The dual solution tau [B, S, n] of the Crammer-Singer SVM on kernel [B, S, S] and one-hot labels [B, S, n],
    differentiable in the kernel (implicitly, see the module docstring)."""
    return _DualSolution.apply(kernel, one_hot, c, ridge, max_iter, tol)
