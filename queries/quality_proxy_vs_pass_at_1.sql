-- purpose: Does a cheap quality proxy track the benchmark? Perplexity, KL divergence to the base model and
--   top-1 agreement of each model × quant next to its pass@1, with their correlations across quants.
-- params: $run_id VARCHAR = NULL  only samples and perplexity rows of this run (default: every run)
-- returns: one row per corpus × model × quant × prompt style, most bits first: corpus, model, quant,
--   bits_per_weight, ppl, kld_mean (0 for the base itself), top1_agreement, pass_at_1 (in that prompt style);
--   then Pearson correlations with pass@1, each within one prompt style — corr_ppl_in_model /
--   corr_kld_in_model across the quants of one model, corr_ppl_all / corr_kld_all across every config on the
--   corpus — and spearman_ppl_all (rank correlation, robust to PPL's skew); last prompt_style. A correlation
--   needs two or more configs and is NULL otherwise. Negative means "higher perplexity, lower pass@1".
-- example: lqbench query quality_proxy_vs_pass_at_1 --format csv
WITH per_task AS (
    SELECT name, quant, prompt_style, suite, task_id, avg(pass_rate) AS pass_rate
    FROM task_outcomes
    WHERE $run_id IS NULL OR run_id = $run_id
    GROUP BY ALL
),
acc AS (
    SELECT name, quant, prompt_style, avg(pass_rate) AS pass_at_1 FROM per_task GROUP BY ALL
),
proxy AS (
    SELECT p.corpus, m.name, m.quant,
           avg(m.bits_per_weight)                                                   AS bits_per_weight,
           avg(p.ppl)                                                               AS ppl,
           avg(coalesce(p.kld_mean, CASE WHEN p.model_id = p.base_model_id THEN 0.0 END)) AS kld_mean,
           avg(coalesce(p.top1_agreement, CASE WHEN p.model_id = p.base_model_id THEN 1.0 END)) AS top1_agreement
    FROM perplexity p
    JOIN models m USING (model_id)
    WHERE $run_id IS NULL OR p.run_id = $run_id
    GROUP BY p.corpus, m.name, m.quant
),
joined AS (
    SELECT x.*, a.prompt_style, a.pass_at_1,
           rank() OVER (PARTITION BY x.corpus, a.prompt_style ORDER BY x.ppl)         AS ppl_rank,
           rank() OVER (PARTITION BY x.corpus, a.prompt_style ORDER BY a.pass_at_1)   AS pass_rank
    FROM proxy x
    JOIN acc a USING (name, quant)
)
SELECT corpus,
       name                                                                       AS model,
       quant,
       round(bits_per_weight, 3)                                                  AS bits_per_weight,
       round(ppl, 4)                                                              AS ppl,
       round(kld_mean, 5)                                                         AS kld_mean,
       round(top1_agreement, 4)                                                   AS top1_agreement,
       round(pass_at_1, 4)                                                        AS pass_at_1,
       round(corr(ppl, pass_at_1) OVER (PARTITION BY corpus, prompt_style, name), 3)      AS corr_ppl_in_model,
       round(corr(kld_mean, pass_at_1) OVER (PARTITION BY corpus, prompt_style, name), 3) AS corr_kld_in_model,
       round(corr(ppl, pass_at_1) OVER (PARTITION BY corpus, prompt_style), 3)            AS corr_ppl_all,
       round(corr(kld_mean, pass_at_1) OVER (PARTITION BY corpus, prompt_style), 3)       AS corr_kld_all,
       round(corr(ppl_rank, pass_rank) OVER (PARTITION BY corpus, prompt_style), 3)       AS spearman_ppl_all,
       prompt_style
FROM joined
ORDER BY corpus, model, prompt_style, bits_per_weight DESC, quant;
