/* stats: the statistics of the cohort and disproportionality reports
 * (issue 18), from first principles so that every figure can be checked
 * against its published worked example (tests/unit/test_stats.c).
 *
 * The 2x2 convention is pinned here and everywhere: a = drug and event,
 * b = drug and other events, c = other drugs and event, d = other drugs and
 * other events (../shared/domain/baricitinib.md section 4; Oracle Empirica
 * and the R package pvm swap b and c).
 *
 * No function returns NaN: a degenerate input (a zero cell, a zero margin,
 * no person-time) gives a defined value, documented with each function. */
#ifndef PV_STATS_H
#define PV_STATS_H

/* The regularized lower incomplete gamma function P(a, x), a > 0, x >= 0
 * (series below a + 1, Lentz continued fraction above). */
double pv_gamma_p(double a, double x);

/* The x with P(a, x) = p, 0 <= p <= 1 (0 at p = 0, HUGE_VAL at p = 1). */
double pv_gamma_p_inv(double a, double p);

/* The p-quantile of a Gamma with this shape and rate. */
double pv_gamma_quantile(double p, double shape, double rate);

/* The p-quantile of a chi-square with df degrees of freedom. */
double pv_chi2_quantile(double p, double df);

/* The digamma function psi(x), x > 0. */
double pv_digamma(double x);

/* An exact (Garwood) Poisson confidence interval for a count k at level
 * 1 - alpha: lower = chi2(alpha/2, 2k)/2 (0 when k = 0), upper =
 * chi2(1 - alpha/2, 2k + 2)/2 (baricitinib reference-rates.md 4.3). */
void pv_poisson_ci(double k, double alpha, double *lo, double *hi);

/* Incidence per 100 patient-years with its exact 95 % CI. With py <= 0 all
 * three are 0 (nothing was at risk; the report says so beside them). */
struct pv_rate {
    double rate, lo, hi;
};
struct pv_rate pv_incidence_100py(double events, double py);

/* The standardized incidence ratio observed / expected with the exact
 * Poisson CI of the observed count divided by expected (the reference is
 * taken as known). expected <= 0 gives all zero. */
struct pv_rate pv_sir(double observed, double expected);

/* The information component of o observed against e expected, IC =
 * log2((o + 0.5) / (e + 0.5)), and its 95 % credibility limits
 * log2(qgamma(0.025 | 0.975, shape o + 0.5, rate e + 0.5)) (BCPNN
 * shrinkage form, Noren et al. 2013). */
void pv_ic(double o, double e, double *ic, double *ic025, double *ic975);

/* One (drug, event) pair of a spontaneous-report table. */
struct pv_dispro {
    double a, b, c, d; /* as counted */
    double prr, prr_lo, prr_hi;
    double chi2; /* Yates-corrected, the MHRA form of Evans 2001 */
    double chi2_uncorrected;
    double ror, ror_lo, ror_hi;
    double expected; /* E = (a + b)(a + c) / N */
    double ic, ic025, ic975;
    int haldane;    /* 1 when 0.5 was added to each cell for PRR/ROR */
    int evans;      /* a >= 3, PRR >= 2, chi2 >= 4 */
    int ror_signal; /* a >= 3 and ror_lo > 1 */
    int ic_signal;  /* ic025 > 0 */
};

/* PRR, ROR (95 % CIs on the log scale), chi-square in both forms, and IC
 * with its 95 % credibility interval (shape O + 0.5, rate E + 0.5; Noren
 * 2013). When any cell is zero, PRR and ROR and their intervals are
 * computed with 0.5 added to each cell (Haldane-Anscombe) and haldane is
 * set; a chi-square with a zero margin is 0. */
void pv_dispro_compute(double a, double b, double c, double d,
                       struct pv_dispro *out);

/* DuMouchel's two-gamma mixture prior theta = (alpha1, beta1, alpha2,
 * beta2, p). */
struct pv_ebgm_prior {
    double alpha1, beta1, alpha2, beta2, p;
};

/* Posterior of one cell with N reports and E expected. */
struct pv_ebgm {
    double qn, ebgm, eb05, eb95;
};
void pv_ebgm_compute(const struct pv_ebgm_prior *prior, double n, double e,
                     struct pv_ebgm *out);

/* The posterior mixture quantile: the lambda with Qn * G(a1 + N, b1 + E) +
 * (1 - Qn) * G(a2 + N, b2 + E) = p. */
double pv_ebgm_quantile(const struct pv_ebgm_prior *prior, double qn, double n,
                        double e, double p);

/* The log marginal likelihood of the prior over cells (n[i], e[i]) with
 * weight w[i] (squashed cells; NULL = all 1), each conditioned on N >= 1
 * (the cells with no report are not in a spontaneous-report table). */
double pv_ebgm_loglik(const struct pv_ebgm_prior *prior, const double *n,
                      const double *e, const double *w, long count);

/* Fits the prior by maximum likelihood (Nelder-Mead on a transformed
 * scale, from `start`, or the openEBGM starting point when start is NULL).
 * Returns 0, or -1 when the cells give no finite likelihood. */
int pv_ebgm_fit(const double *n, const double *e, const double *w, long count,
                const struct pv_ebgm_prior *start, struct pv_ebgm_prior *out);

#endif
