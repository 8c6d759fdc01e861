/** Queries, Updates and signals shared by the workflows and the client. */
import { defineQuery, defineUpdate } from '@temporalio/workflow';
import type { ConfirmAnswer, UpgradeProgress } from './types.js';

export const progressQuery = defineQuery<UpgradeProgress>('progress');
export const confirmUpdate = defineUpdate<{ accepted: boolean }, [ConfirmAnswer]>('confirm');
